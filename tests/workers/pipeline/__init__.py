"""Tests of workers/pipeline."""
