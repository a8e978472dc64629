"""Reading one rule or mapping file strictly: YAML without duplicate keys,
a size limit, and every validation problem as `file: field.path: reason`.

Shared by the rule directory (`riskwatch.rules.loader`) and the alert
workflow's files (`riskwatch.rules.response`), so both refuse a bad file
the same way and neither imports the other to read one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError


class _StrictYamlLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (PyYAML silently keeps the last)."""


def _mapping_without_duplicates(loader: _StrictYamlLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            # A complex key (`? [a, b]`, `? {a: 1}`) is valid YAML but no rule
            # names anything with a list or a mapping: a problem at its line.
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a single name, not a {type(key).__name__}",
                key_node.start_mark,
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictYamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


# A rule file is a few kilobytes of hand-written YAML; the largest shipped one
# is under 20 KB. Anything past this is a wrong file (an export, a log) or a
# hostile one, and parsing it would cost time and memory for nothing.
MAX_RULE_FILE_BYTES = 1024 * 1024


def read_yaml(path: Path, problems: list[str], label: str | None = None) -> Any:
    """The parsed YAML of one rule file, or UNREADABLE with the reason appended
    to `problems` as `file: where: reason` (where is `line N` when the parser
    knows it; file is `label`, by default the file's name). Refused before parsing: a file over MAX_RULE_FILE_BYTES (1 MiB),
    one that is not UTF-8. Refused while parsing: YAML errors, duplicate and
    complex (list or mapping) keys, nesting too deep for the parser."""
    name = path.name if label is None else label
    try:
        with path.open("rb") as stream:
            # Read one byte past the limit rather than trusting stat(): the
            # size of a FIFO or a /proc file is not known in advance.
            data = stream.read(MAX_RULE_FILE_BYTES + 1)
    except OSError as error:
        problems.append(f"{name}: cannot read: {error.strerror or error}")
        return UNREADABLE
    if len(data) > MAX_RULE_FILE_BYTES:
        problems.append(f"{name}: larger than {MAX_RULE_FILE_BYTES // 1024} KiB, the limit for a rule file: "
                        f"not read (is it the right file?)")
        return UNREADABLE
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"{name}: not UTF-8 text")
        return UNREADABLE
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        reason = getattr(error, "problem", None) or str(error)
        problems.append(f"{name}: {where}: {reason}")
        return UNREADABLE
    except RecursionError:
        problems.append(f"{name}: document: nested too deeply to be a rule file")
        return UNREADABLE


def format_location(location: tuple) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "function-before", "[key]") or str(part).startswith(("function-", "literal[", "union[")):
            continue  # pydantic's own steps, not a place in the file
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


_REASONS: dict[str, Callable[[dict], str]] = {
    "extra_forbidden": lambda e: "unknown key",
    "missing": lambda e: "required",
    "literal_error": lambda e: f"must be one of {e.get('ctx', {}).get('expected', '')}",
    "greater_than_equal": lambda e: f"must be >= {e['ctx']['ge']}",
    "less_than_equal": lambda e: f"must be <= {e['ctx']['le']}",
    "too_short": lambda e: "must not be empty",
    "string_too_short": lambda e: "must not be empty",
    "float_parsing": lambda e: "must be a number",
    "float_type": lambda e: "must be a number",
    "bool_parsing": lambda e: "must be true or false",
    "bool_type": lambda e: "must be true or false",
    "string_type": lambda e: "must be a string",
    "dict_type": lambda e: "must be a mapping",
    "model_type": lambda e: "must be a mapping",
    "list_type": lambda e: "must be a list",
}


def pydantic_problems(file_name: str, error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False):
        location = tuple(detail.get("loc", ()))
        # Union members show up as extra location parts (float/str); drop them.
        location = tuple(p for p in location if p not in ("float", "str", "int", "bool"))
        reason_of = _REASONS.get(detail["type"])
        if reason_of is not None:
            reason = reason_of(detail)
        else:
            reason = str(detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{file_name}: {format_location(location)}: {reason}")
    # A union field fails once per member; say it once.
    return list(dict.fromkeys(problems))


UNREADABLE = object()  # read_yaml already recorded why


def validate_file(file_name: str, data: Any, model: type[BaseModel], problems: list[str]) -> Any:
    """The file's model, or None with its problems recorded (nothing more if read_yaml already failed)."""
    if data is UNREADABLE:
        return None
    if data is None:
        problems.append(f"{file_name}: (top level): the file is empty")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems.extend(pydantic_problems(file_name, error))
        return None
