"""NIR interchange: `nir_to_ir` and `ir_to_nir` with the simulation's dt (needs the optional `nir` package).

Conventions and every assumption (forward Euler, thresholds, v_reset, CubaLIF order) are in
`converters.nir.common` and `converters.nir.importer`; `nir` itself is imported on first use.
"""

from .common import NIRConversionWarning
from .exporter import ir_to_nir, save_nir
from .importer import nir_to_ir

__all__ = ["nir_to_ir", "ir_to_nir", "save_nir", "NIRConversionWarning"]
