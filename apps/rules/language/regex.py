"""The bounded regular-expression subset of `matches`, translated into Python and PostgreSQL syntax."""

import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError

MAX_PATTERN = 200
MAX_REPEAT = 100


@dataclass(frozen=True)
class _Regex:
    source: str
    python: re.Pattern[str]
    postgres: str


# --- Regular expressions -----------------------------------------------------------------------

_CLASSES = {"d": "0-9", "s": " \\t\\n\\r\\f\\v", "w": "A-Za-z0-9_"}
_CHAR_ESCAPES = frozenset("ntrfv")
_PUNCTUATION = frozenset(string.punctuation)


@dataclass
class _Frame:
    complex: bool = False  # holds a repetition, an alternation or an anchor
    branch_empty: bool = True


def _literal(char: str) -> str:
    # Every ASCII punctuation is escaped in the output, so no character is special in one dialect
    # and literal in the other (`}` or `]` alone, `--` or `&&` inside a class).
    return "\\" + char if char in _PUNCTUATION else char


def _parse_regex(value: object, where: str) -> _Regex:
    """Translate a pattern of the supported subset into Python and PostgreSQL syntax."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where}: expected a non-empty regular expression")
    if len(value) > MAX_PATTERN:
        raise ValidationError(f"{where}: regular expression longer than {MAX_PATTERN} characters")
    if any(ord(char) < 32 and char not in "\t\n" for char in value):
        raise ValidationError(f"{where}: control characters are not allowed in a pattern")

    def fail(reason: str) -> ValidationError:
        return ValidationError(f"{where}: {reason} in regular expression {value!r}")

    py: list[str] = []
    pg: list[str] = []
    stack = [_Frame()]
    # What the last token was: "atom", "group" (complex or not), "quantifier", "lazy", or None.
    last: str | None = None
    last_complex = False
    i = 0
    n = len(value)
    while i < n:
        char = value[i]
        frame = stack[-1]
        if char in "*+?{":
            if char == "?" and last == "quantifier":
                py.append("?")
                pg.append("?")
                last = "lazy"
                i += 1
                continue
            if last in ("quantifier", "lazy"):
                raise fail("a repetition of a repetition")
            if last not in ("atom", "group"):
                raise fail(f"nothing to repeat before {char!r}")
            if last == "group" and last_complex:
                raise fail(
                    "a repeated group that contains a repetition, alternation or anchor "
                    "(it can take exponential time)"
                )
            if char == "{":
                match = re.match(r"\{([0-9]{1,3})(,([0-9]{1,3})?)?\}", value[i:])
                if not match:
                    raise fail("a '{' that is not a repetition {m}, {m,} or {m,n} (write \\{)")
                low = int(match.group(1))
                high = int(match.group(3)) if match.group(3) is not None else None
                if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                    raise fail(f"a repetition count above {MAX_REPEAT}")
                if high is not None and high < low:
                    raise fail("a repetition {m,n} with n below m")
                token = match.group(0)
                i += len(token)
            else:
                token = char
                i += 1
            py.append(token)
            pg.append(token)
            frame.complex = True
            last = "quantifier"
            continue
        i += 1
        if char == "\\":
            if i >= n:
                raise fail("a trailing backslash")
            escaped = value[i]
            i += 1
            if escaped.lower() in _CLASSES:
                body = _CLASSES[escaped.lower()]
                token = f"[{body}]" if escaped.islower() else f"[^{body}]"
            elif escaped in _CHAR_ESCAPES or escaped in _PUNCTUATION:
                token = "\\" + escaped
            else:
                raise fail(
                    f"the escape \\{escaped} (backreferences, \\b and other escapes are not "
                    "supported)"
                )
            py.append(token)
            pg.append(token)
            last = "atom"
        elif char == ".":
            py.append(".")
            pg.append(".")
            last = "atom"
        elif char in "^$":
            py.append("^" if char == "^" else "\\Z")
            pg.append(char)
            frame.complex = True
            last = "anchor"
        elif char == "(":
            if value.startswith("?", i):
                if not value.startswith("?:", i):
                    raise fail(
                        "a (?…) group other than (?:…) (lookarounds, named groups and inline "
                        "flags are not supported)"
                    )
                i += 2
            py.append("(?:")
            pg.append("(?:")
            stack.append(_Frame())
            last = None
            continue
        elif char == ")":
            if len(stack) == 1:
                raise fail("an unmatched ')'")
            if frame.branch_empty:
                raise fail("an empty group or alternative")
            stack.pop()
            stack[-1].complex = stack[-1].complex or frame.complex
            stack[-1].branch_empty = False
            py.append(")")
            pg.append(")")
            last, last_complex = "group", frame.complex
            continue
        elif char == "|":
            if frame.branch_empty:
                raise fail("an empty alternative")
            frame.complex = True
            frame.branch_empty = True
            py.append("|")
            pg.append("|")
            last = None
            continue
        elif char == "[":
            i, token = _parse_class(value, i, fail)
            py.append(token)
            pg.append(token)
            last = "atom"
        else:
            token = _literal(char)
            py.append(token)
            pg.append(token)
            last = "atom"
        frame.branch_empty = False
    if len(stack) > 1:
        raise fail("an unclosed '('")
    if stack[0].branch_empty:
        raise fail("an empty alternative")
    python_source = "".join(py)
    try:
        compiled = re.compile(python_source, re.DOTALL)
    except re.error as exc:  # the translation above should make this unreachable
        raise fail(str(exc)) from None
    return _Regex(value, compiled, "".join(pg))


def _parse_class(value: str, i: int, fail: Callable[[str], ValidationError]) -> tuple[int, str]:
    """Parse a bracket class starting after its '['; returns the index after ']' and the token."""
    n = len(value)
    out = ["["]
    if value.startswith("^", i):
        out.append("^")
        i += 1
    items = 0
    pending: str | None = None  # the last single character, a possible range start
    while True:
        if i >= n:
            raise fail("an unclosed '['")
        char = value[i]
        i += 1
        if char == "]":
            if items == 0:
                raise fail("an empty class [] (write \\] for a literal bracket)")
            out.append("]")
            return i, "".join(out)
        if char == "[":
            raise fail("a '[' inside a class (write \\[; POSIX classes are not supported)")
        if char == "-":
            if pending is None or i >= n or value[i] in "]-":
                raise fail("a '-' that is not a range a-z inside a class (write \\-)")
            end = value[i]
            i += 1
            if end == "\\":
                if i >= n or value[i] not in _PUNCTUATION:
                    raise fail("a range that does not end in a single character")
                end = value[i]
                i += 1
            elif end == "[":
                raise fail("a '[' inside a class (write \\[)")
            if ord(end) < ord(pending):
                raise fail(f"the reversed range {pending}-{end}")
            out.append("-" + _literal(end))
            pending = None
            continue
        if char == "\\":
            if i >= n:
                raise fail("a trailing backslash")
            escaped = value[i]
            i += 1
            if escaped in _CLASSES:
                out.append(_CLASSES[escaped])
                pending = None
            elif escaped in _CHAR_ESCAPES:
                out.append("\\" + escaped)
                pending = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}[escaped]
            elif escaped in _PUNCTUATION:
                out.append("\\" + escaped)
                pending = escaped
            else:
                raise fail(f"the escape \\{escaped} inside a class")
        else:
            out.append(_literal(char))
            pending = char
        items += 1
