# SPDX-License-Identifier: GPL-3.0-or-later
"""Materialising and publishing chesspos-positions: ``python -m builder.publish``."""
