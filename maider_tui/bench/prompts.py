"""The benchmark suite: 12 prompts in 3 categories, with the seed's names and target lengths.

The categories, names and target token counts are the seed's (`maider benchmark`); the texts are our
own, of the same kind. Each prompt is sent with `max_tokens` = its target, so a healthy server returns
about that many tokens and the run measures sustained decoding, not a short answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from maider_tui.bench.context_code import ORDER_SERVICE, TRACE

CATEGORIES = ("coding", "context_heavy", "reasoning")
SYSTEM = "You are a senior software engineer. Answer thoroughly, with code where it helps."


@dataclass(frozen=True)
class BenchPrompt:
    """One benchmark prompt: `id` is stable across versions (results are stored under it)."""

    id: str
    category: str
    name: str
    target_tokens: int
    user: str

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat messages to send: the shared system prompt, then the task."""
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": self.user}]


def _with_code(task: str, *, trace: bool = False) -> str:
    extra = f"\n\nProduction log from the last hour:\n```\n{TRACE}```" if trace else ""
    return f"Here is the code of our order service:\n\n```python\n{ORDER_SERVICE}```{extra}\n\n{task}"


PROMPTS: tuple[BenchPrompt, ...] = (
    # --- coding -------------------------------------------------------------------------------------
    BenchPrompt("coding_simple_function", "coding", "Simple function", 100,
                "Write a Python function `chunked(items, size)` that yields consecutive lists of at most "
                "`size` items from any iterable, with a docstring and type hints."),
    BenchPrompt("coding_code_review", "coding", "Code review", 200,
                "Review this function and suggest concrete improvements:\n\n```python\n"
                "def load_users(path):\n    f = open(path)\n    users = []\n    for line in f.readlines():\n"
                "        parts = line.split(',')\n        if parts[2] == 'active':\n"
                "            users.append({'name': parts[0], 'email': parts[1]})\n    return users\n```"),
    BenchPrompt("coding_algorithm_explanation", "coding", "Algorithm explanation", 400,
                "Explain how Dijkstra's shortest-path algorithm works, why it needs non-negative edge "
                "weights, and its complexity with a binary heap. Then implement it in Python with heapq "
                "and walk through a five-node example."),
    BenchPrompt("coding_complex_refactoring", "coding", "Complex refactoring", 500,
                "Refactor this callback-based Node.js-style Python code to asyncio with async/await, "
                "keeping behaviour, adding timeouts and proper error handling:\n\n```python\n"
                "def fetch_all(urls, done):\n    results, pending = {}, [len(urls)]\n    for url in urls:\n"
                "        def cb(err, body, url=url):\n            results[url] = err or body\n"
                "            pending[0] -= 1\n            if pending[0] == 0:\n"
                "                done(results)\n"
                "        http_get(url, cb)\n```\nExplain each change."),
    # --- context_heavy ------------------------------------------------------------------------------
    BenchPrompt("context_multi_file_analysis", "context_heavy", "Multi-file analysis", 800,
                _with_code("Explain how these files work together when a customer pays for an order. "
                           "List every bug, race condition and security problem you find across the "
                           "files, with the file and line each one is in.")),
    BenchPrompt("context_refactor_with_context", "context_heavy", "Refactor with context", 1000,
                _with_code("Refactor this service for correctness and testability: remove the module-"
                           "level cache and lock, inject a clock, make payment idempotent, and use "
                           "parameterised SQL everywhere. Show the full new code of every file you "
                           "change.")),
    BenchPrompt("context_debug_trace_analysis", "context_heavy", "Debug trace analysis", 600,
                _with_code("Find the root cause of each error in the log, explain why the API still "
                           "answers 200 for a failed payment, why a refund can happen twice, and give "
                           "the fixes.", trace=True)),
    BenchPrompt("context_architecture_explanation", "context_heavy", "Architecture explanation", 800,
                _with_code("Write architecture documentation for this service: its layers, the order "
                           "state machine, data flow for place, pay and cancel, its dependencies, and "
                           "what would have to change to run it on several servers.")),
    # --- reasoning ----------------------------------------------------------------------------------
    BenchPrompt("reasoning_problem_decomposition", "reasoning", "Problem decomposition", 300,
                "We need to migrate a 2 TB PostgreSQL database to a new region with under five minutes "
                "of downtime. Break the problem into steps, with the risks of each and how to check it."),
    BenchPrompt("reasoning_design_tradeoffs", "reasoning", "Design trade-offs", 400,
                "Compare a message queue (RabbitMQ), a log (Kafka) and plain HTTP webhooks for sending "
                "order events to five internal services. Weigh ordering, delivery guarantees, "
                "operations cost and failure modes, then recommend one for a team of four."),
    BenchPrompt("reasoning_algorithmic_optimization", "reasoning", "Algorithmic optimization", 500,
                "A job finds, for each of 2 million user sessions, the other sessions that overlap it in "
                "time; it compares every pair and takes nine hours. Reason about better algorithms "
                "(sorting, sweep line, interval trees), their complexity and memory, and which to pick."),
    BenchPrompt("reasoning_system_design", "reasoning", "System design", 600,
                "Design a URL-shortening service for 100 million new links a month and 10 billion "
                "redirects: APIs, data model, key generation, caching, storage, analytics, abuse "
                "prevention, and how it degrades when a region fails."),
)

WARMUP = BenchPrompt("warmup", "warmup", "Warm-up", 16, "Say hello in one short sentence.")


def category_key(text: str) -> str:
    """The category as stored (`context_heavy`) for `text` as typed: `context-heavy` or `context_heavy`."""
    return text.strip().lower().replace("-", "_")


def category_name(category: str) -> str:
    """A category as the user reads and types it, on command lines and screens: `context-heavy`."""
    return category.replace("_", "-")


TASK_NAMES: tuple[str, ...] = tuple(category_name(c) for c in CATEGORIES)
"""The task categories as spelt to the user; `category_key` takes either spelling back."""


def prompts_for(category: str = "all") -> tuple[BenchPrompt, ...]:
    """The prompts of one category, or all twelve; ValueError names the categories for a typo."""
    wanted = category_key(category)
    if wanted == "all":
        return PROMPTS
    if wanted not in CATEGORIES:
        raise ValueError(f"unknown benchmark category {category!r}; use all, {', '.join(TASK_NAMES)}")
    return tuple(p for p in PROMPTS if p.category == wanted)
