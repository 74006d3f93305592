r"""Line breaking for display equations: long ones are split so they fit an article's text block.

No TeX runs here. The width of a LaTeX math string is *estimated* from Computer Modern
metrics at 10 pt (letters about 5 pt, a binary operator with its spacing about 12 pt,
`\frac` as wide as its wider part, scripts at 70 %), and an equation wider than the budget
becomes an `aligned` block broken at its outermost `+`/`-`, relations, commas and
`\quad` gaps; a `\left( \dots \right)` group that is still too wide is opened into
`\biggl( \dots \biggr)` across lines. `tests/test_latex.py` compiles the result with
pdflatex and fails on any overfull box, so the estimate is checked where it matters.
"""

from __future__ import annotations

import re

#: \textwidth of `\documentclass{article}` at 10 pt, letter or A4 paper.
TEXT_WIDTH_PT = 345.0
#: What an equation may take: the text width less room for an equation number "(99)".
BUDGET_PT = 300.0
_INDENT_PT = 30.0  # \qquad after the alignment point on continuation lines

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}]|\s+|.", re.S)
_SPACES = {r"\,": 1.7, r"\:": 2.2, r"\;": 2.8, r"\ ": 3.3, r"\quad": 10.0, r"\qquad": 20.0, r"\!": -1.7, "~": 3.3}
_BINARY = {"+", "-", r"\cdot", r"\otimes", r"\circ", r"\times", r"\pm"}
_RELATIONS = {"=", "<", ">", r"\le", r"\ge", r"\leq", r"\geq", r"\approx", r"\ll", r"\gg", r"\equiv",
              r"\Longrightarrow", r"\Rightarrow", r"\to", r"\sim", r"\propto", "&="}
_WIDE = {r"\Longrightarrow": 16.7, r"\Rightarrow": 10.0, r"\infty": 10.0, r"\ll": 10.0, r"\gg": 10.0,
         r"\sum": 14.4, r"\prod": 13.0, r"\int": 11.0, r"\mathbb": 7.2, r"\top": 7.8, r"\partial": 5.8, r"\nabla": 8.3,
         r"\varepsilon": 4.7, r"\ell": 4.2, r"\dots": 13.4, r"\ldots": 13.4, r"\cdots": 13.4}
_FUNCTIONS = {r"\log", r"\exp", r"\lim", r"\det", r"\sin", r"\cos", r"\tan", r"\sinh", r"\cosh", r"\tanh",
              r"\max", r"\min", r"\ln"}
_ONE_ARG = {r"\hat", r"\tilde", r"\bar", r"\dot", r"\ddot", r"\vec", r"\mathbf", r"\mathit", r"\boldsymbol",
            r"\overline", r"\widehat", r"\widetilde", r"\displaystyle"}
_TEXT_ARG = {r"\text", r"\mathrm", r"\operatorname", r"\textrm", r"\mathsf"}


def tokens(s: str) -> list[str]:
    r"""Split LaTeX into groups `{...}`, `\left. \dots \right.` groups, commands and characters."""
    flat = _TOKEN.findall(s)
    out, i = [], 0
    while i < len(flat):
        t = flat[i]
        if t == "{" or t == r"\left":
            j = _close(flat, i)
            out.append("".join(flat[i:j + 1]) if t == "{" else "".join(flat[i:j + 2]))
            i = j + (1 if t == "{" else 2)
            continue
        out.append(t)
        i += 1
    return [t for t in out if t]


def _close(flat: list[str], i: int) -> int:
    """Index of the token closing the group opened at `i` (its `}` or its `\right`)."""
    opener, closer = ("{", "}") if flat[i] == "{" else (r"\left", r"\right")
    depth = 0
    for j in range(i, len(flat)):
        depth += (flat[j] == opener) - (flat[j] == closer)
        if depth == 0:
            return j
    raise ValueError(f"unbalanced LaTeX: {''.join(flat[i:])[:80]}")


def _inner(group: str) -> str:
    r"""The contents of `{...}`, or of `\left( ... \right)` without its delimiters."""
    if group.startswith("{"):
        return group[1:-1]
    body = group[len(r"\left"):]
    body = body[2:] if body.startswith("\\") else body[1:]  # the opening delimiter: ( or \{ or .
    cut = body.rfind(r"\right")
    return body[:cut]


def width(s: str, scale: float = 1.0) -> float:
    """Estimated width in pt of a math-mode string at `scale` (1 display/text, 0.7 script)."""
    toks, w, i = tokens(s), 0.0, 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t.isspace() or t in ("&", r"\\"):
            pass
        elif t in ("^", "_"):
            sup = width(_strip(nxt), max(scale * 0.7, 0.5))
            if i + 3 < len(toks) and toks[i + 2] in ("^", "_"):
                sup = max(sup, width(_strip(toks[i + 3]), max(scale * 0.7, 0.5)))
                i += 2
            w += sup
            i += 1
        elif t.startswith("{"):
            w += width(t[1:-1], scale)
        elif t.startswith(r"\left"):
            tall = r"\frac" in t or r"\sum" in t or r"\underbrace" in t
            w += width(_inner(t), scale) + (15.0 if tall else 7.8) * scale + 1.7
        elif t == r"\frac" or t == r"\tfrac" or t == r"\dfrac":
            inner = scale if (t == r"\dfrac" or scale == 1.0) and t != r"\tfrac" else scale * 0.7
            num, den = toks[i + 1], toks[i + 2]
            w += max(width(_strip(num), inner), width(_strip(den), inner)) + 2.4 * scale
            i += 2
        elif t == r"\underbrace":
            body = width(_strip(nxt), scale)
            label = width(_strip(toks[i + 3]), scale * 0.7) if i + 3 < len(toks) and toks[i + 2] == "_" else 0
            w += max(body, label)
            i += 3 if label else 1
        elif t == r"\sqrt":
            w += width(_strip(nxt), scale) + 8.3 * scale
            i += 1
        elif t in _TEXT_ARG:
            w += 5.0 * scale * len(_strip(nxt)) + (1.7 if t == r"\operatorname" else 0)
            i += 1
        elif t in _ONE_ARG:
            w += width(_strip(nxt), scale)
            i += 1
        elif t in _SPACES:
            w += _SPACES[t]
        elif t in _BINARY:
            w += (7.8 + 4.4) * scale if scale == 1.0 else 7.8 * scale
        elif t in _RELATIONS:
            w += (_WIDE.get(t, 7.8) + 5.6) * scale if scale == 1.0 else _WIDE.get(t, 7.8) * scale
        elif t in _FUNCTIONS:
            w += (5.0 * (len(t) - 1) + 1.7) * scale
        elif t in ("(", ")", "[", "]", "|"):
            w += 3.9 * scale
        elif t in (",", ";"):
            w += (2.8 + 1.7) * scale
        elif t in _WIDE:
            w += _WIDE[t] * scale
        elif t.startswith("\\"):
            w += (7.2 if t[1:2].isupper() else 6.0) * scale
        elif t.isupper():
            w += 8.9 * scale
        elif t.isdigit() or t in ".'":
            w += 5.0 * scale
        else:
            w += 5.8 * scale
        i += 1
    return w


def _strip(group: str) -> str:
    return group[1:-1] if group.startswith("{") and group.endswith("}") else group


def _is_binary_at(toks: list[str], i: int) -> bool:
    """`toks[i]` is + or - used as a binary operator (something stands before it)."""
    prev = [t for t in toks[:i] if not t.isspace()]
    return bool(prev) and prev[-1] not in _RELATIONS and prev[-1] not in _BINARY and prev[-1] not in ("&", "(", ",")


def segments(s: str, fine: bool = True) -> list[str]:
    """Break `s` (no `&`) after commas and at \\quad gaps; with `fine`, also before each outermost
    binary +/- and relation."""
    toks, out, cur = tokens(s), [], []
    depths = _depths(toks)
    for i, t in enumerate(toks):
        if depths[i]:  # inside plain ( ) or [ ]: never a break
            cur.append(t)
            continue
        gap = t in (r"\quad", r"\qquad") and "".join(cur).strip()
        op = fine and ((t in _RELATIONS and cur) or (t in ("+", "-") and _is_binary_at(toks, i)))
        if gap or op:
            out.append("".join(cur).strip())
            cur = [] if gap else [t]
            continue
        cur.append(t)
        if t == ",":
            out.append("".join(cur).strip())
            cur = []
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    # A comma's trailing spacing (`,\ ` or `,\quad`) is dropped at a break, kept inside a line.
    return [s for s in out if s and s not in (r"\ ", r"\,")]


def _depths(toks: list[str]) -> list[int]:
    """Nesting depth in plain `( )` / `[ ]` at each token (a closing token counts as inside)."""
    out, d = [], 0
    for t in toks:
        d += t in ("(", "[")
        out.append(d)
        d -= t in (")", "]")
    return [max(x, 0) if t not in ("(", "[") else x for x, t in zip(out, toks)]


def _join(a: str, b: str) -> str:
    return f"{a} {b}".strip()


def _lead(seg: str) -> str:
    """A continuation line's start: `{}` before a binary operator keeps its spacing."""
    return "{} " + seg if seg[:1] in "+-" or seg.startswith((r"\cdot", r"\otimes")) else seg


def _open_group(seg: str, budget: float) -> list[str] | None:
    r"""Lines for a too-wide segment `pre \left( a + b + ... \right) post`, or None."""
    toks = tokens(seg)
    groups = [i for i, t in enumerate(toks) if t.startswith(r"\left(")]
    if not groups:
        return None
    g = max(groups, key=lambda i: width(toks[i]))
    inner = segments(_inner(toks[g]))
    if len(inner) < 2:
        return None
    big = r"\biggl(" if r"\frac" in toks[g] else r"\bigl("
    close = r"\biggr)" if big == r"\biggl(" else r"\bigr)"
    pre, post = "".join(toks[:g]).strip(), "".join(toks[g + 1:]).strip()
    pieces = [_join(pre, big) + " " + inner[0]] + inner[1:]
    pieces[-1] = _join(pieces[-1], close + (" " + post if post else ""))
    return _fill(pieces, budget, budget - _INDENT_PT)


def _fill(pieces: list[str], first: float, rest: float) -> list[str]:
    """Greedy: as many pieces a line as fit; a piece too wide alone is cut finer (at its +/- and
    relations), then opened at its widest parenthesis, if it can be."""
    lines: list[str] = []
    cur, room = "", first
    for p in pieces:
        if cur and width(_join(cur, p)) <= room:
            cur = _join(cur, p)
            continue
        if cur:
            lines.append(cur)
            cur, room = "", rest
        if width(p) <= room:
            cur = p
            continue
        finer = segments(p)
        cut = _fill(finer, room, rest) if len(finer) > 1 else _open_group(p, room)
        if not cut:
            cur = p  # nothing to cut: the line stays as wide as it is
            continue
        lines += cut[:-1]
        cur, room = cut[-1], rest
    lines.append(cur)
    return lines


def _rows(body: str) -> list[str]:
    """The rows of an `aligned` block, or the one row of a plain equation."""
    m = re.fullmatch(r"\s*\\begin\{aligned\}(.*)\\end\{aligned\}\s*", body, re.S)
    if not m:
        return [body.strip()]
    return [r.strip() for r in re.split(r"\\\\", m.group(1)) if r.strip()]


def _split_row(row: str) -> tuple[str, str]:
    """(left-hand side, rest starting with its relation) at the row's `&` or first outer relation."""
    toks = tokens(row)
    depths = _depths(toks)
    for i, t in enumerate(toks):
        if not depths[i] and (t == "&" or (t in _RELATIONS and i > 0)):
            rest = "".join(toks[i + 1:] if t == "&" else toks[i:]).strip()
            return "".join(toks[:i]).strip(), rest
    return "", row


def fit(body: str, budget: float = BUDGET_PT) -> str:
    r"""`body` unchanged if it fits `budget` pt, else an `aligned` block of lines that do.

    Rows are aligned at their first relation; continuation lines start at `&\qquad`."""
    rows = _rows(body)
    if all(width(r) <= budget for r in rows):
        return body
    out: list[str] = []
    for row in rows:
        # A row made of several equations side by side is first cut at its \quad gaps.
        parts = [row] if width(row) <= budget else _equations(row)
        for part in parts:
            lhs, rest = _split_row(part)
            head = width(lhs)
            pieces = segments(rest, fine=False)
            lines = _fill(pieces, budget - head, budget - _INDENT_PT) if pieces else [""]
            out.append(f"{lhs} &{lines[0]}".strip() if lhs else f"& {lines[0]}")
            out += [rf"&\qquad {_lead(line)}" for line in lines[1:]]
    return "\\begin{aligned}\n" + " \\\\\n".join(out) + "\n\\end{aligned}"


def _equations(row: str) -> list[str]:
    r"""Cut a row at its outermost `\qquad`/`\quad` gaps after a comma (equations side by side)."""
    toks, parts, cur = tokens(row), [], []
    depths = _depths(toks)
    for i, t in enumerate(toks):
        prev = "".join(cur).rstrip()
        if not depths[i] and t in (r"\qquad", r"\quad") and prev.endswith(","):
            parts.append(prev)
            cur = []
            continue
        cur.append(t)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


__all__ = ["BUDGET_PT", "TEXT_WIDTH_PT", "fit", "segments", "tokens", "width"]
