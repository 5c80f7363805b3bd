"""Knowledge assets: collections, embeddings, retrieval, answers and consultations."""
