"""Matching engine: vector and lexical indexes, fusion, explanations, filters."""
