"""
ScriptsManager Metadata:
@description: Convert a value between engineering units (length, mass, temperature, pressure, flow)
@description_es: Convierte un valor entre unidades de ingeniería (longitud, masa,
    temperatura, presión, caudal)
@description_it: Converte un valore tra unità ingegneristiche (lunghezza, massa,
    temperatura, pressione, portata)
@description_fr: Convertit une valeur entre unités d'ingénierie (longueur, masse,
    température, pression, débit)
@description_long: docs/unit_converter.md
@required_level: operator
@category: engineering
@tags: units,conversion
@parameters: [
    {"name": "value", "type": "float", "default": 100.0, "required": true,
     "label": {"en": "Value", "es": "Valor", "it": "Valore", "fr": "Valeur"}},
    {"name": "from_unit", "type": "select", "default": "celsius",
     "options": ["mm", "cm", "m", "km", "in", "ft", "mi", "g", "kg", "t", "lb",
                 "celsius", "fahrenheit", "kelvin", "pa", "kpa", "bar", "psi",
                 "l_min", "m3_h", "gpm"],
     "label": {"en": "From", "es": "De", "it": "Da", "fr": "De"}},
    {"name": "to_unit", "type": "select", "default": "fahrenheit",
     "options": ["mm", "cm", "m", "km", "in", "ft", "mi", "g", "kg", "t", "lb",
                 "celsius", "fahrenheit", "kelvin", "pa", "kpa", "bar", "psi",
                 "l_min", "m3_h", "gpm"],
     "label": {"en": "To", "es": "A", "it": "A", "fr": "Vers"}},
    {"name": "precision", "type": "int", "min": 0, "max": 10, "default": 3,
     "label": {"en": "Decimals", "es": "Decimales", "it": "Decimali", "fr": "Décimales"}}
]
@execution_timeout: 60
@flask_port: auto
"""

import sys

DEFAULTS = {"value": 100.0, "from_unit": "celsius", "to_unit": "fahrenheit", "precision": 3}

# Factor to the quantity's base unit (m, kg, Pa, m3/s).
LINEAR = {
    "length": {
        "mm": 0.001,
        "cm": 0.01,
        "m": 1.0,
        "km": 1000.0,
        "in": 0.0254,
        "ft": 0.3048,
        "mi": 1609.344,
    },
    "mass": {"g": 0.001, "kg": 1.0, "t": 1000.0, "lb": 0.45359237},
    "pressure": {"pa": 1.0, "kpa": 1000.0, "bar": 100000.0, "psi": 6894.757293168},
    "flow": {"l_min": 0.001 / 60, "m3_h": 1 / 3600, "gpm": 0.003785411784 / 60},
}
TEMPERATURE = ("celsius", "fahrenheit", "kelvin")

try:
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    PROXY_MODE = True
    print("Running in ScriptsManager (batch run)")
except NameError:
    PROXY_MODE = False
    print("Running in testing mode")
    PARAMETERS = {}


def quantity_of(unit: str) -> str | None:
    """The quantity a unit measures, or None if unknown."""
    if unit in TEMPERATURE:
        return "temperature"
    return next((name for name, units in LINEAR.items() if unit in units), None)


def to_kelvin(value: float, unit: str) -> float:
    """A temperature in kelvin."""
    if unit == "celsius":
        return value + 273.15
    if unit == "fahrenheit":
        return (value - 32) * 5 / 9 + 273.15
    return value


def from_kelvin(value: float, unit: str) -> float:
    """A temperature in kelvin converted to ``unit``."""
    if unit == "celsius":
        return value - 273.15
    if unit == "fahrenheit":
        return (value - 273.15) * 9 / 5 + 32
    return value


def convert(value: float, source: str, target: str) -> float:
    """Convert ``value`` from ``source`` to ``target``; raises ValueError when impossible."""
    quantity = quantity_of(source)
    if quantity is None or quantity != quantity_of(target):
        raise ValueError(
            f"cannot convert {source} ({quantity}) to {target} ({quantity_of(target)})"
        )
    if quantity == "temperature":
        kelvin = to_kelvin(value, source)
        if kelvin < 0:
            raise ValueError(f"{value} {source} is below absolute zero")
        return from_kelvin(kelvin, target)
    units = LINEAR[quantity]
    return value * units[source] / units[target]


def main() -> None:
    """Convert and print the value, then the same value in every related unit."""
    params = {**DEFAULTS, **{k: v for k, v in PARAMETERS.items() if v is not None}}
    value, source, target = float(params["value"]), params["from_unit"], params["to_unit"]
    digits = int(params["precision"])
    try:
        result = convert(value, source, target)
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    print(f"\n{value:g} {source} = {result:.{digits}f} {target}\n", flush=True)
    quantity = quantity_of(source)
    related = TEMPERATURE if quantity == "temperature" else tuple(LINEAR[quantity])
    print(f"{quantity.capitalize()} table:")
    for unit in related:
        print(f"  {convert(value, source, unit):>16.{digits}f} {unit}")


main()
