"""The demo collection: a seeded, procedurally drawn set of artworks for `artlens demo`."""

from artlens.demo.generate import (
    DEMO_STYLES,
    DEMO_SUBJECTS,
    DemoSettingsError,
    generate_demo_collection,
)

__all__ = ["DEMO_STYLES", "DEMO_SUBJECTS", "DemoSettingsError", "generate_demo_collection"]
