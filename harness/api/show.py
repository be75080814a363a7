"""A written report that Jupyter shows inline: its Markdown, or HTML with the figures embedded."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

# ![alt](loss.png) in Markdown, src="loss.png" in the HTML rendered from it
_MD_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)(\))")
_HTML_IMAGE = re.compile(r'(<img[^>]*\bsrc=")([^"]+)(")')


@dataclass(frozen=True)
class Report:
    """results/<experiment>/ as written by `python -m harness.report`; `.path` is report.md."""

    experiment: str
    path: Path

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def markdown(self) -> str:
        return self.path.read_text()

    @property
    def figures(self) -> list[Path]:
        return sorted(self.folder.glob("*.png"))

    def _inline(self, match: re.Match) -> str:
        target = self.folder / match.group(2)
        if "://" in match.group(2) or target.suffix != ".png" or not target.is_file():
            return match.group(0)
        data = base64.b64encode(target.read_bytes()).decode()
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    def _repr_markdown_(self) -> str:
        return _MD_IMAGE.sub(self._inline, self.markdown)

    def _repr_html_(self) -> str:
        from markdown_it import MarkdownIt

        html = MarkdownIt("commonmark").enable("table").render(self.markdown)
        return f'<div class="harness-report">{_HTML_IMAGE.sub(self._inline, html)}</div>'

    def __repr__(self) -> str:
        return f"Report({self.experiment!r}, path={str(self.path)!r})"
