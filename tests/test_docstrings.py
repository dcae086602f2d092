"""Every public name has a docstring: the API reference (docs/reference, Sphinx autodoc) is
generated from them. Walks ``textsecure.__all__``, the public names of ``textsecure.stores``,
``.errors``, ``.attachments``, ``.enums`` and ``.testing.conformance``, and the public methods
and properties of every class among them. The native classes get theirs from the Rust doc
comments in rust/textsecure-py/src (PyO3 turns ``///`` into ``__doc__``)."""

from __future__ import annotations

import enum
import importlib
import inspect
import types

import pytest
import textsecure

MODULES = [
    "textsecure",
    "textsecure.stores",
    "textsecure.errors",
    "textsecure.attachments",
    "textsecure.enums",
    "textsecure.testing.conformance",
    "textsecure.aio",
]

#: kinds of class attributes that are methods or properties (Python and native)
_CALLABLE_KINDS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.GetSetDescriptorType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
    property,
)


def _public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
        names = [n for n in names if getattr(vars(module)[n], "__module__", None) == module_name]
    return [n for n in names if n != "__version__"]


def _doc(obj: object) -> str | None:
    inner = getattr(obj, "__func__", None) if isinstance(obj, staticmethod | classmethod) else obj
    if isinstance(inner, property):
        inner = inner.fget
    doc = getattr(inner, "__doc__", None)
    return doc.strip() if isinstance(doc, str) else None


def _missing() -> list[str]:
    missing: list[str] = []
    seen: set[int] = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module_name):
            obj = getattr(module, name)
            qual = f"{module_name}.{name}"
            if not _doc(obj):
                missing.append(qual)
            if not inspect.isclass(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            if issubclass(obj, enum.Enum) or issubclass(obj, BaseException):
                continue  # members are values; exceptions document themselves
            for attr, value in vars(obj).items():
                if attr.startswith("_") or not isinstance(value, _CALLABLE_KINDS):
                    continue
                if not _doc(value):
                    missing.append(f"{qual}.{attr}")
    return missing


def test_walk_finds_the_api() -> None:
    assert "SessionCipher" in textsecure.__all__
    assert len(_public_names("textsecure.stores")) >= 10


def test_every_public_name_has_a_docstring() -> None:
    missing = _missing()
    if missing:
        pytest.fail(f"{len(missing)} public names without a docstring:\n" + "\n".join(missing))
