"""Thin Hydra entry points over plain functions."""
