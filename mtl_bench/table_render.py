"""Rendering a built table (a display frame whose ``attrs`` carry title and notes) as Markdown
(GitHub pipes, via tabulate) or a LaTeX booktabs ``tabular``; ``tables.build_tables`` writes both.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def render_markdown(
    tables: pd.DataFrame | Mapping[str, pd.DataFrame], title: str | None = None
) -> str:
    """Title line, GitHub pipe table, then the notes (title/notes from ``frame.attrs``).

    Given the dict that ``build_tables`` returns, renders every table, separated by blank lines
    (what ``mtl-bench tables`` prints).
    """
    if isinstance(tables, Mapping):
        return "\n\n\n".join(render_markdown(f) for f in tables.values())
    title = tables.attrs.get("title", "") if title is None else title
    # disable_numparse keeps "83.40" as printed: tabulate would otherwise re-format numbers.
    body = tables.to_markdown(index=False, tablefmt="github", disable_numparse=True)
    return "\n\n".join(p for p in (title, body, *tables.attrs.get("notes", [])) if p)


_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "—": "---", "†": r"$^\dagger$", "×": r"$\times$", "<": r"$<$", ">": r"$>$",
    "²": r"$^2$", "…": r"\ldots{}", "→": r"$\rightarrow$",
}  # fmt: skip


def tex_escape(text: object) -> str:
    """``text`` with LaTeX special characters escaped (and ±, —, †, ×, ², …, → as LaTeX
    commands), so the tables' own text compiles with pdflatex without inputenc tricks."""
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def render_latex(frame: pd.DataFrame, title: str | None = None) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); title and notes as comments."""
    title = frame.attrs.get("title", "") if title is None else title
    align = "".join("l" if i == 0 or c == "Note" else "r" for i, c in enumerate(frame.columns))
    lines = [f"% {line}" for line in (title, *frame.attrs.get("notes", [])) if line]
    lines.append(r"% needs \usepackage{booktabs} (\toprule, \midrule, \bottomrule)")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(tex_escape(c) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(tex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
