"""seedvar model zoo: small vision CNNs built by name, each split into a deterministic trunk and a dropout head.

Beside the built-in models, `build` takes a user's own: an import path `module:callable` or a name that an
installed package registers under the entry-point group `seedvar.models`.
"""

from seedvar.nets import (  # noqa: F401 - imported to register the models
    cbam_resnet,
    hybridsn,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    senet,
    shufflenet_v1,
    shufflenet_v2,
)
from seedvar.nets.entry import ModelError, ModelInfo
from seedvar.nets.measure import count_macs, count_params, probe
from seedvar.nets.plugins import ENTRY_POINT_GROUP
from seedvar.nets.registry import (
    build,
    builtin_models,
    check_options,
    is_builtin,
    list_models,
    model_info,
    model_options,
    plugin_models,
    register,
    source_sha256,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelError",
    "ModelInfo",
    "build",
    "builtin_models",
    "check_options",
    "count_macs",
    "count_params",
    "is_builtin",
    "list_models",
    "model_info",
    "model_options",
    "plugin_models",
    "probe",
    "register",
    "source_sha256",
]
