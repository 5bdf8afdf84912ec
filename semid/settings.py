"""One config mechanism for every model: dataclass fields declared as :class:`semid.params.Param`.

Tokenizer schemes declare their parameters as ``Param`` objects; model configs
(TIGER, LC-Rec, SASRec, LightGCN, the adapters to come) are dataclasses whose
fields are declared with :func:`setting`, which stores the same ``Param`` in
the field's metadata. So both share one type check, one range/choice check,
one ``--set key=value`` parser and one error style::

    @dataclass
    class MyConfig(Settings):
        owner = "mymodel"
        hidden: int = setting(64, "width", check=at_least(1))
        loss: str = setting("ce", "training loss", choices=("ce", "bce"))

    MyConfig().with_assignments({"hidden": "32"})      # typed parsing
    MyConfig(hidden=0)   # ParameterError: mymodel: setting 'hidden' must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .errors import ParameterError
from .params import Param

__all__ = ["Settings", "setting"]


def setting(
    default: Any,
    help: str = "",
    *,
    check: Callable[[Any], str | None] | None = None,
    choices: tuple[Any, ...] | None = None,
    kind: type | None = None,
) -> Any:
    """A dataclass field with a default and the checks of a :class:`Param`."""
    param = Param("", default, help, check=check, choices=choices, kind=kind)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"param": param})
    return dataclasses.field(default=default, metadata={"param": param})


class Settings:
    """Base of model config dataclasses (see the module docstring).

    Subclasses set ``owner`` (the name in messages) and may override
    :meth:`check_together` for constraints between fields.
    """

    owner: ClassVar[str] = "settings"

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def declared(cls) -> dict[str, Param]:
        """Every field's :class:`Param`, named (fields declared without :func:`setting` get a plain one)."""
        out = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            param = f.metadata.get("param")
            default = f.default if f.default is not dataclasses.MISSING else None
            param = param or Param(f.name, default)
            out[f.name] = dataclasses.replace(param, name=f.name)
        return out

    def validate(self):
        """Coerce and check every field, then :meth:`check_together`; returns ``self``.

        Raises:
            ParameterError: ``"<owner>: setting '<name>' must be ..., got <value>"``.
        """
        for name, param in self.declared().items():
            value = getattr(self, name)
            if param.type is tuple and isinstance(value, list):
                value = tuple(value)
            setattr(self, name, param.validate(self.owner, value, noun="setting"))
        self.check_together()
        return self

    def check_together(self) -> None:
        """Constraints between fields (override); raise :class:`ParameterError`."""

    # -- conversion ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def _unknown(cls, key: str) -> ParameterError:
        valid = ", ".join(sorted(cls.declared()))
        return ParameterError(f"{cls.owner}: unknown setting {key!r}; valid settings: {valid}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from stored values (unknown keys are refused, listing the valid ones)."""
        declared = cls.declared()
        for key in data:
            if key not in declared:
                raise cls._unknown(key)
        return cls(**dict(data))

    def with_assignments(self, assignments: Mapping[str, Any]):
        """A copy with overrides; strings (from ``--set``) are parsed to each field's type."""
        declared = self.declared()
        values = self.to_dict()
        for key, value in assignments.items():
            if key not in declared:
                raise self._unknown(key)
            values[key] = declared[key].parse(self.owner, value, noun="setting") if isinstance(value, str) else value
        return type(self).from_dict(values)
