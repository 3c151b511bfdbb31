"""The part of botocore's current Chime model that the emulator follows, and how it is cut.

``chime-2018-05-01.current.json``, beside the seed model, is cut by
:func:`current_subset` from the model installed with botocore
(``botocore/data/chime/2018-05-01/service-2.json``): the seed's 16 operations with every
shape they reach, and the method and URI of every other operation, so that a request for
one is answered by its name. Documentation is left out.

It is vendored rather than loaded from botocore at run time so that the emulator serves
the same API whatever botocore is installed (each member it serves has hand-written
semantics, which a newer model could not bring along), and keeps working if botocore
drops the model of a service nearing its end of support. After a botocore upgrade, cut it
again and give any new member its semantics::

    python -c "from bulkchime.emulator._vendor import main; main()"

``tests/test_emulator_current_model.py`` fails while the file and the installed model differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Final

__all__ = [
    "CURRENT_MODEL_FILE",
    "SEED_MODEL_FILE",
    "current_subset",
    "installed_model",
    "main",
    "read_model_file",
]

#: The seed model: the operations the emulator serves, and the base of their shapes.
SEED_MODEL_FILE: Final = "chime-2018-05-01.json"
#: The vendored cut of botocore's current model.
CURRENT_MODEL_FILE: Final = "chime-2018-05-01.current.json"


def read_model_file(name: str) -> dict[str, Any]:
    """A model file shipped beside this module, parsed."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def installed_model() -> dict[str, Any]:
    """botocore's Chime model as installed (``chime``, ``service-2``)."""
    from botocore.loaders import Loader  # type: ignore[import-untyped, unused-ignore]

    model: dict[str, Any] = Loader().load_service_model("chime", "service-2")
    return model


def _strip(value: Any) -> Any:
    """*value* without ``documentation`` keys, with plain dicts (botocore loads OrderedDicts)."""
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k != "documentation"}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def _refs(shape: Mapping[str, Any]) -> Iterable[str]:
    for member in shape.get("members", {}).values():
        yield member["shape"]
    for part in ("member", "key", "value"):
        if part in shape:
            yield shape[part]["shape"]


def current_subset(model: Mapping[str, Any]) -> dict[str, Any]:
    """The served operations of *model* with the shapes they reach, and every route."""
    shapes: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name in sorted(read_model_file(SEED_MODEL_FILE)["operations"]):
        operation = model["operations"][name]
        operations[name] = _strip(operation)
        pending = [operation[io]["shape"] for io in ("input", "output") if io in operation]
        pending += [error["shape"] for error in operation.get("errors", [])]
        while pending:
            shape_name = pending.pop()
            if shape_name not in shapes:
                shapes[shape_name] = _strip(model["shapes"][shape_name])
                pending.extend(_refs(model["shapes"][shape_name]))
    routes = {
        name: {"method": op["http"]["method"], "requestUri": op["http"]["requestUri"]}
        for name, op in sorted(model["operations"].items())
    }
    return {
        "metadata": _strip(model["metadata"]),
        "operations": operations,
        "routes": routes,
        "shapes": dict(sorted(shapes.items())),
    }


def main() -> None:
    """Write the subset of the installed model beside this module."""
    target = resources.files(__package__).joinpath(CURRENT_MODEL_FILE)
    text = json.dumps(current_subset(installed_model()), indent=1, sort_keys=True) + "\n"
    with resources.as_file(target) as path:
        path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
