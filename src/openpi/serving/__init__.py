"""Serve a trained policy over websockets: openpi's chunk protocol and BEHAVIOR's per-step protocol."""
