"""lme4 formula syntax, read by a closed grammar: nothing in a formula is ever evaluated.

    formula  := response "~" rhs
    rhs      := part ("+" part)* ("-" "1")?
    part     := "0" | "1" | product | "(" rhs ("|" | "||") name ")"
    product  := chain ("*" chain)*          a*b = a + b + a:b
    chain    := name (":" name)*            an interaction
    name     := identifier | `any text but a backtick`

Anything else (a function call, `^`, `/`, a number other than 0 and 1) is
refused with a message that says to add a column to the data instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

MAX_FORMULA = 2_000  # characters; a formula is a line, not a program

# As R's syntactic names: letters of any script (Größe), digits, '.' and '_', not a digit first.
_NAME = r"(?:[^\W\d]|\.)[\w.]*"
_TOKEN = re.compile(
    rf"\s*(?:(?P<name>{_NAME})|`(?P<quoted>[^`]+)`|(?P<num>\d+(?:\.\d*)?)"
    r"|(?P<op>\|\||[~+\-*:()|/]))"
)
_IDENTIFIER = re.compile(rf"^{_NAME}$")
# A call left open where the text stops being readable: the `I(` of `I(x^2)`.
_OPEN_CALL = re.compile(rf"({_NAME})\s*\([^()|~]*$")


class FormulaError(ValueError):
    """A formula cannot be read; the message says what to write instead."""


def _call_error(name: str) -> FormulaError:
    return FormulaError(
        f"calls {name}(...): functions are not evaluated in a formula; add the "
        "transformed values to the data as a column and name that column"
    )


@dataclass(frozen=True)
class GroupBlock:
    """`(terms | group)` or `(terms || group)`: the terms that vary by `group`."""

    terms: tuple[tuple[str, ...], ...]  # each term a tuple of column names (an interaction)
    intercept: bool
    group: str
    correlated: bool


@dataclass(frozen=True)
class Formula:
    """A parsed formula: response, population-level terms and the group blocks."""

    response: str
    terms: tuple[tuple[str, ...], ...]
    intercept: bool
    blocks: tuple[GroupBlock, ...]

    def columns(self) -> list[str]:
        """Every column the formula names, response first, each once."""
        out = [self.response]
        for chain in self.terms + tuple(t for b in self.blocks for t in b.terms):
            out += [c for c in chain if c not in out]
        out += [b.group for b in self.blocks if b.group not in out]
        return out

    def __str__(self) -> str:
        def rhs(terms, intercept):
            parts = (["1"] if intercept else ["0"]) + [":".join(map(quote, t)) for t in terms]
            return " + ".join(parts)

        text = f"{quote(self.response)} ~ {rhs(self.terms, self.intercept)}"
        for b in self.blocks:
            bar = "|" if b.correlated else "||"
            text += f" + ({rhs(b.terms, b.intercept)} {bar} {quote(b.group)})"
        return text


def quote(name: str) -> str:
    """A column name as a formula writes it (backticks around names that are not identifiers)."""
    return name if _IDENTIFIER.match(name) else f"`{name}`"


def v1_formula(response: str, predictor: str, group: str) -> str:
    """The v1 spec's model (response, predictor, group) as a formula: independent effects."""
    x = quote(predictor)
    return f"{quote(response)} ~ {x} + ({x} || {quote(group)})"


def parse_formula(text: str) -> Formula:
    """Parse lme4 formula text; raise FormulaError saying what is wrong and what to write."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("is empty; write e.g. y ~ x + (x | g)")
    if len(text) > MAX_FORMULA:
        raise FormulaError(f"is {len(text)} characters long; a formula is one line")
    return _Parser(_tokens(text)).formula()


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            call = _OPEN_CALL.search(text, 0, pos)  # I(x^2): the call is what to explain
            if call:
                raise _call_error(call.group(1))
            bad = text[pos:].strip()[:20]
            raise FormulaError(
                f"cannot read {bad!r}: a formula holds column names, 1, 0, +, -1, :, *, "
                "( ... | group) and ( ... || group) only; compute transformed values as a new "
                "column in the data instead"
            )
        kind = m.lastgroup
        value = m.group(kind)
        tokens.append(("name" if kind == "quoted" else kind, value))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.i = tokens, 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self, kind=None, value=None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            raise self.unexpected(tok)
        self.i += 1
        return tok

    def unexpected(self, tok) -> FormulaError:
        if tok[0] == "end":
            return FormulaError("ends too early; write e.g. y ~ x + (x | g)")
        if tok[0] == "op" and tok[1] == "(" and self.i > 0 and self.peek(-1)[0] == "name":
            return _call_error(self.peek(-1)[1])
        if tok[0] == "num":
            return FormulaError(
                f"has the number {tok[1]}: only 1 (intercept), 0 and -1 (no intercept) may "
                "appear; put constants in the data as a column"
            )
        return FormulaError(
            f"cannot read {tok[1]!r} here: a formula holds column names, 1, 0, +, -1, :, *, "
            "( ... | group) and ( ... || group) only; compute other values as a new column"
        )

    def formula(self) -> Formula:
        if self.peek()[0] != "name":
            raise FormulaError("must start with the response column, e.g. y ~ x + (x | g)")
        response = self.take("name")[1]
        if self.peek() == ("op", "("):  # log(y) ~ ...
            raise self.unexpected(self.peek())
        if self.peek() != ("op", "~"):
            raise FormulaError(f"needs '~' after the response {response!r}: y ~ x + (x | g)")
        self.take("op", "~")
        terms, intercept, blocks = self.rhs(top=True)
        if self.peek()[0] != "end":
            raise self.unexpected(self.peek())
        return Formula(response, terms, intercept, tuple(blocks))

    def rhs(self, top: bool):
        terms: list[tuple[str, ...]] = []
        intercept, blocks = True, []
        first = True
        while True:
            tok = self.peek()
            if tok == ("op", "-"):
                self.take()
                if self.peek() != ("num", "1"):
                    raise FormulaError(
                        "'-' may only remove the intercept (- 1); to drop a term, leave it out"
                    )
                self.take()
                intercept = False
            else:
                if not first:
                    self.take("op", "+")
                    tok = self.peek()
                if tok[0] == "num":
                    if tok[1] not in ("0", "1"):
                        raise self.unexpected(tok)
                    self.take()
                    intercept = tok[1] == "1"
                elif tok == ("op", "("):
                    if not top:
                        raise FormulaError("a group term ( ... | g) cannot sit inside another")
                    blocks.append(self.block())
                else:
                    for term in self.product():
                        if not any(set(term) == set(t) for t in terms):
                            terms.append(term)
            first = False
            if self.peek() not in (("op", "+"), ("op", "-")):
                return tuple(terms), intercept, blocks

    def block(self) -> GroupBlock:
        self.take("op", "(")
        terms, intercept, _ = self.rhs(top=False)
        bar = self.peek()
        if bar not in (("op", "|"), ("op", "||")):
            raise FormulaError(
                "a parenthesis holds a group term, ( ... | group) or ( ... || group); "
                "parentheses for anything else are not read"
            )
        self.take()
        if self.peek()[0] != "name":
            raise FormulaError(f"needs a grouping column after {bar[1]!r}, e.g. (x | g)")
        group = self.take("name")[1]
        if self.peek()[0] == "end":
            raise FormulaError(f"ends too early; close the group term: ( ... {bar[1]} {group})")
        if self.peek() != ("op", ")"):
            raise FormulaError(
                f"groups by one column only (here {group!r}); nested (a/b) and interacting "
                "(a:b) grouping factors are not supported: add a column that combines them"
            )
        self.take("op", ")")
        return GroupBlock(terms, intercept, group, bar[1] == "|")

    def product(self) -> list[tuple[str, ...]]:
        chains = [self.chain()]
        while self.peek() == ("op", "*"):
            self.take()
            chains.append(self.chain())
        # a*b*c: every non-empty combination of the factors, lower orders first.
        out = []
        for k in range(1, len(chains) + 1):
            for combo in combinations(chains, k):
                term: tuple[str, ...] = ()
                for chain in combo:
                    term += tuple(c for c in chain if c not in term)
                out.append(term)
        return out

    def chain(self) -> tuple[str, ...]:
        tok = self.peek()
        if tok[0] != "name":
            raise self.unexpected(tok)
        names = [self.take()[1]]
        if self.peek() == ("op", "("):
            raise self.unexpected(self.peek())
        while self.peek() == ("op", ":"):
            self.take()
            if self.peek()[0] != "name":
                raise self.unexpected(self.peek())
            names.append(self.take()[1])
            if self.peek() == ("op", "("):
                raise self.unexpected(self.peek())
        return tuple(dict.fromkeys(names))
