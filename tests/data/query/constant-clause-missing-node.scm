; Parity case "constant-clause-missing-node", after OpenCog atomspace tests/query/constant-clauses.scm: a constant clause naming an atom the data lacks.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x")
  (And (Inheritance (Variable "$x") (Concept "mammal"))
       (Inheritance (Concept "mammal") (Concept "plant"))))
;; @expect
(Set)
;; @expect-beside (the query beside the data: its constant clause is always there, and is data the other clause can match)
(Set (Concept "cat") (Concept "dog"))
