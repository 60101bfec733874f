"""The subset of YAML that sample specs use, read with the standard library alone.

Nodes run the stand-in with numpy and PyAV only, so PyYAML may be missing there. Supported: nested
block mappings by indentation, block lists (``- item``, scalars or mappings), flow lists and mappings
written as JSON (``[1, 2]``, ``{"a": 1}``), ``#`` comments, quoted strings, ``|``/``>`` block scalars,
and YAML 1.1 scalars (null/~, true/false/yes/no/on/off, ints, floats). Anything else raises
``YamlError`` with the line, as a YAML parser error would.
"""

import json
import re

TRUE, FALSE, NULL = ("true", "yes", "on"), ("false", "no", "off"), ("null", "~", "")
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|\.inf|\.nan)$", re.IGNORECASE)


class YamlError(ValueError):
    pass


def loads(text):
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, strip_comment(line)) for number, line in lines]
    reader = Reader([(number, line) for number, line in lines if line.strip() and line.strip() != "---"])
    if not reader.lines:
        return None
    value = reader.block(indent_of(reader.lines[0][1]))
    if reader.position < len(reader.lines):
        raise YamlError(f"unexpected content at line {reader.lines[reader.position][0]}")
    return value


def strip_comment(line):
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index].rstrip()
    return line.rstrip()


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def scalar(text, number):
    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise YamlError(f"unsupported flow collection at line {number}: {text}") from exc
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    lowered = text.lower()
    if lowered in NULL:
        return None
    if lowered in TRUE or lowered in FALSE:
        return lowered in TRUE
    if NUMBER.match(text):
        try:
            return int(text)
        except ValueError:
            return float(text.replace(".inf", "inf").replace(".nan", "nan"))
    return text


class Reader:
    def __init__(self, lines):
        self.lines, self.position = lines, 0

    def block(self, indent):
        number, line = self.lines[self.position]
        if line.lstrip().startswith("- ") or line.strip() == "-":
            return self.sequence(indent)
        if ":" in line:
            return self.mapping(indent)
        self.position += 1
        return scalar(line, number)

    def sequence(self, indent):
        items = []
        while self.position < len(self.lines):
            number, line = self.lines[self.position]
            if indent_of(line) != indent or not line.lstrip().startswith("-"):
                break
            rest = line.lstrip()[1:].lstrip()
            if not rest:
                self.position += 1
                items.append(self.block(indent_of(self.lines[self.position][1])))
            elif re.match(r"^[^'\"\[{][^:]*:(\s|$)", rest):  # "- key: value": a mapping item
                self.lines[self.position] = (number, " " * (indent + 2) + rest)
                items.append(self.mapping(indent + 2))
            else:
                self.position += 1
                items.append(scalar(rest, number))
        return items

    def mapping(self, indent):
        result = {}
        while self.position < len(self.lines):
            number, line = self.lines[self.position]
            if indent_of(line) < indent:
                break
            if indent_of(line) > indent:
                raise YamlError(f"bad indentation at line {number}")
            key, colon, rest = line.strip().partition(":")
            if not colon or (rest and not rest.startswith(" ")):
                raise YamlError(f"expected 'key: value' at line {number}")
            key = scalar(key, number)
            rest = rest.strip()
            self.position += 1
            if rest in ("|", ">", "|-", ">-"):
                result[key] = self.block_scalar(indent, folded=rest[0] == ">", keep=not rest.endswith("-"))
            elif rest:
                result[key] = scalar(rest, number)
            elif self.position < len(self.lines) and indent_of(self.lines[self.position][1]) > indent:
                result[key] = self.block(indent_of(self.lines[self.position][1]))
            elif self.position < len(self.lines) and self.lines[self.position][1].lstrip().startswith("- "):
                result[key] = self.sequence(indent)  # a list at the key's own indentation
            else:
                result[key] = None
        return result

    def block_scalar(self, indent, *, folded, keep):
        parts = []
        while self.position < len(self.lines) and indent_of(self.lines[self.position][1]) > indent:
            parts.append(self.lines[self.position][1].strip())
            self.position += 1
        text = (" " if folded else "\n").join(parts)
        return text + "\n" if keep and parts else text
