"""Tests of workers/dispatch."""
