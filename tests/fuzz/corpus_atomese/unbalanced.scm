(List (Concept "a")
