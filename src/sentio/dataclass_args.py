"""predict.py's argument parser: HfArgumentParser's flags for dataclasses of plain fields, without
importing transformers.

Every Sentio script parses its flags with transformers' HfArgumentParser (`cli.parser_for`). Importing
it imports transformers, 1 to 3 s of start-up, which a prediction with an ONNX model needs for
nothing else. For dataclasses whose fields are str, int, float or bool (or Optional of one), this
parser declares exactly the flags HfArgumentParser declares (same names with `-` spellings, types,
defaults, help, `--flag [true|false]` switches and `--no_flag` complements) and fills the
dataclasses the same way; tests/inference/test_onnx_light.py compares the two. A field of another
type is refused: such a script uses `cli.parser_for`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Sequence

from .cli import HelpFormatter

_PLAIN = (str, int, float, bool)


def string_to_bool(value: Any) -> bool:
    """yes/no, true/false, t/f, y/n, 1/0 (any case), as HfArgumentParser reads a bool flag's value."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).")


class DataclassArgumentParser(argparse.ArgumentParser):
    """An argparse parser over `dataclass_types` of plain fields; `parse_args_into_dataclasses` as
    HfArgumentParser's (a namespace of the arguments no dataclass holds comes last)."""

    def __init__(self, dataclass_types: Sequence[type], **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)
        self.dataclass_types = list(dataclass_types)
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            for field in dataclasses.fields(dtype):
                if field.init:
                    self._add_field(field, hints[field.name])

    def _add_field(self, field: dataclasses.Field, kind: Any) -> None:
        options = [f"--{field.name}"] + ([f"--{field.name.replace('_', '-')}"] if "_" in field.name else [])
        kwargs = dict(field.metadata)
        aliases = kwargs.pop("aliases", [])
        options += [aliases] if isinstance(aliases, str) else list(aliases)
        members = typing.get_args(kind)
        if members and type(None) in members and len(members) == 2:  # Optional[X]
            kind = next(m for m in members if m is not type(None))
        if kind not in _PLAIN:
            raise TypeError(f"field {field.name}: {kind} is not str, int, float or bool; parse it with cli.parser_for")
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if kind is bool:
            kwargs["type"] = string_to_bool
            if default is not None:  # `--flag` alone is True; `--flag false` is False
                kwargs.update(default=False if default is dataclasses.MISSING else default, nargs="?", const=True)
        elif default is dataclasses.MISSING:
            kwargs.update(type=kind, required=True)
        else:
            kwargs.update(type=kind, default=default)
        self.add_argument(*options, **kwargs)
        if kind is bool and field.default is True:
            self.add_argument(f"--no_{field.name}", f"--no-{field.name.replace('_', '-')}", action="store_false",
                              dest=field.name, **{k: v for k, v in field.metadata.items() if k != "aliases"},
                              default=False)

    def parse_args_into_dataclasses(self, args: Sequence[str] | None = None,
                                    return_remaining_strings: bool = False) -> tuple:
        """The dataclasses filled from `args`, then a namespace of any other arguments (positionals)."""
        namespace, remaining = self.parse_known_args(args)
        outputs: list[Any] = []
        for dtype in self.dataclass_types:
            names = {f.name for f in dataclasses.fields(dtype) if f.init}
            values = {k: v for k, v in vars(namespace).items() if k in names}
            for name in values:
                delattr(namespace, name)
            outputs.append(dtype(**values))
        if vars(namespace):
            outputs.append(namespace)
        if return_remaining_strings:
            return (*outputs, remaining)
        if remaining:
            raise ValueError(f"Some specified arguments are not used by the HfArgumentParser: {remaining}")
        return tuple(outputs)
