"""Tests of workers/keys."""
