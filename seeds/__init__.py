"""Seed data for churnclv: a synthetic transaction log with known BG/NBD and Gamma-Gamma parameters.

See ``seeds.generate`` and ``seeds/README.md``.
"""
