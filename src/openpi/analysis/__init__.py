"""Diagnosis and data tools: action magnitudes, balanced norm stats, arm-heavy selection, offline evaluation.

Each tool's testable core lives here and works on numpy arrays; ``scripts/`` wraps them in tyro CLIs.
"""
