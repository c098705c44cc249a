"""Cookiecutter templates for `gadget init`."""
