"""seedvar model zoo: small vision CNNs built by name, each split into a deterministic trunk and a dropout head."""

from nets import (  # noqa: F401 - imported to register the models
    cbam_resnet,
    hybridsn,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    senet,
    shufflenet_v1,
    shufflenet_v2,
)
from nets.registry import (
    ModelError,
    ModelInfo,
    build,
    count_macs,
    count_params,
    list_models,
    model_info,
    model_options,
    register,
)

__all__ = [
    "ModelError",
    "ModelInfo",
    "build",
    "count_macs",
    "count_params",
    "list_models",
    "model_info",
    "model_options",
    "register",
]
