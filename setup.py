"""Packaging beyond setup.cfg's declarative metadata: the top-level pretrained/ folder (the shipped
weights, kept there for the checkout and `make weights`) is installed as distpose_app/pretrained,
so that an installed wheel finds it through importlib.resources (core/paths.py)."""

from setuptools import find_packages, setup

PACKAGES = find_packages(include=["distpose_app", "distpose_app.*"])

setup(
    packages=[*PACKAGES, "distpose_app.pretrained"],
    package_dir={"distpose_app.pretrained": "pretrained"},
    package_data={"distpose_app.pretrained": ["*.pt", "MODEL_CARD.md", "LICENSE.md"]},
)
