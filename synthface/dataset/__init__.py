"""A dataset run: the journal, make (the loop), export to labels, the card, merge, scenes
(detector data: groups, photometric variation) and the preview."""
