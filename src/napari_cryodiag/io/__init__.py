"""File formats: MRC, RELION STAR, cryoSPARC .cs, crYOLO .cbox.

Readers return plain numpy arrays and pandas tables with explicit units; see
docs/ARCHITECTURE.md for the pick-table columns and coordinate conventions.
"""
