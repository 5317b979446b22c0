"""Deprecated: model folders are now each family's (``musicgenre.families``: the shallow family's folder format in
``families/shallow/folder.py``, loading any family through the registry in ``families/resolve.py``). This name
stays for one release and re-exports what it held."""

from musicgenre.families.resolve import (  # noqa: F401
    BUNDLED_KINDS,
    CONFIG_NAME,
    bundled_model_path,
    load_model_folder,
    resolve_model,
)
from musicgenre.families.shallow.folder import (  # noqa: F401
    FORMAT,
    PIPELINE_NAME,
    TRUSTED_TYPES,
    XGB_NAME,
    ShallowModel,
    _skops_io,
    feature_rows,
    load_pipeline,
    save_model,
)
from musicgenre.families.spec import DEFAULT_BUNDLED  # noqa: F401
from musicgenre.models.hub import download_model, hub_file, hub_reachable, not_cached  # noqa: F401
