"""A Babel extractor for the rule files' texts a person reads in the console.

`pybabel extract -F riskwatch/console/babel.cfg` runs it over rules/*.yaml:
indicator, playbook and plan titles, step actions and fund names become
catalogue messages, so translators see them with the file and line they come
from, and the console shows them in the reader's language. A text a risk
officer edits later shows as written until its translation is added.
"""

from __future__ import annotations

import yaml

TRANSLATED_KEYS = frozenset({"title", "action", "name"})


def extract_rules(fileobj, keywords, comment_tags, options):
    """Babel's extractor interface: yields (line, funcname, message, comments)
    for every string value under a key of TRANSLATED_KEYS."""
    node = yaml.compose(fileobj.read().decode("utf-8"))
    yield from _walk(node)


def _walk(node):
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(value, yaml.ScalarNode) and key.value in TRANSLATED_KEYS and value.value.strip():
                yield value.start_mark.line + 1, None, value.value, [f"rules: {key.value}"]
            else:
                yield from _walk(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item)
