"""The script catalog: header parsing, metadata merge, discovery on disk, file watching.

Plain functions over a SQLAlchemy ``Session`` and paths; nothing here needs a Flask app.
"""

from manager.catalog.discovery import (
    DiscoveryReport,
    discover,
    is_runnable,
    refresh_group,
    refresh_script,
    script_path,
)
from manager.catalog.errors import MetadataError
from manager.catalog.header import HeaderResult, parse_header, read_header
from manager.catalog.localize import localized, normalize_localized
from manager.catalog.metadata import update_group_metadata, update_script_metadata
from manager.catalog.schema import (
    PARAMETER_TYPES,
    mask_secrets,
    validate_parameter_definitions,
    validate_parameter_values,
)

__all__ = [
    "PARAMETER_TYPES",
    "DiscoveryReport",
    "HeaderResult",
    "MetadataError",
    "discover",
    "is_runnable",
    "localized",
    "mask_secrets",
    "normalize_localized",
    "parse_header",
    "read_header",
    "refresh_group",
    "refresh_script",
    "script_path",
    "update_group_metadata",
    "update_script_metadata",
    "validate_parameter_definitions",
    "validate_parameter_values",
]
