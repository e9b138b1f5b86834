"""Tests of workers/outputs."""
