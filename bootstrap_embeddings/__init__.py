"""Bootstrapping sentence embeddings for low-resource languages with LLM-written triplets.

A reimplementation of Basoz, Horne & Opper (2026), arXiv 2603.01732, as a DVC pipeline.
"""
