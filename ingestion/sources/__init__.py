"""Readers per source kind: each turns one file's bytes into chunks with locators.

text.py        Markdown by heading, plain text by paragraph
code.py        source code by function, method and class (tree-sitter)
regulation/    articles, paragraphs and points with their citation paths
paper/         papers by section, with page numbers and bibliographic metadata
"""
