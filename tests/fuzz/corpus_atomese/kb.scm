; a small knowledge base
(ConceptNode "cat" (stv 0.9 0.8) (av 10 -2 1))
(InheritanceLink (stv 1 0.5)
  (Concept "cat")
  (ConceptNode "animal"))
#| block |#
(EvaluationLink (Predicate "says") (List (Concept "cat") (Concept "m\"e\\o\nw")))
(SimilarityLink (Concept "dog") (Concept "cat") (stv 0.25 0.125))
(Number -2.5e3)
(MemberLink (ConceptNode "x") (SetLink))
