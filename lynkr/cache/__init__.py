"""Answer caches: an exact-match prompt cache and an opt-in semantic cache.

``keys`` decides what may be cached and under which key (pure); ``store`` keeps entries in SQLite
(with an in-process front) or Redis; ``service.AnswerCache`` is what route handlers call: look up,
replay a hit (as JSON or as a real event stream), store a complete answer.
"""
