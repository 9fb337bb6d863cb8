"""Value pools for typed constraints' kwargs, written for this project.

Used when a corruption needs a new value (``substitute``) and when the seed script draws kwargs. Seed
keywords come from each base task's own list; the generic words here are for constraints that arrive
without a task (e.g. a substitute in a method). No entry holds a comma, so any of them can be combined
with ``punctuation:no_comma``.
"""

from __future__ import annotations

GENERIC_WORDS = ("balance", "window", "harvest", "signal", "pattern", "journey", "anchor", "lantern", "meadow",
                 "compass", "ledger", "orbit", "canvas", "summit", "thread", "beacon", "puzzle", "river")

END_PHRASES = ("Hope this helps you get started.", "Let me know which option you prefer.",
               "That covers the essentials.", "Good luck with the next step!", "Feel free to ask for more detail.",
               "Thanks for reading to the end.", "Which part would you like to explore next?",
               "Happy planning!")

POSTSCRIPT_MARKERS = ("P.S.", "P.P.S")

SECTION_SPLITTERS = ("Section", "SECTION", "Part", "PART", "Step")

# Latin-script languages that ``langdetect`` tells apart reliably on a paragraph of text.
LANGUAGES = ("fr", "de", "es", "it", "pt", "pl")

# Letters for "at least" (common in English prose) and "less than" (rare, so the bound can be met).
COMMON_LETTERS = ("e", "t", "a", "o", "i", "n", "s", "r")
RARE_LETTERS = ("z", "q", "x", "j")

# The three sentences ``detectable_format:constrained_response`` accepts (fixed by the checker).
CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
