; Parity case "bind-basic", after OpenCog atomspace tests/query/BindLinkUTest / query.scm: a rewrite instantiated per grounding.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Bind (Variable "$x")
  (Inheritance (Variable "$x") (Concept "mammal"))
  (Inheritance (Variable "$x") (Concept "animal")))
;; @expect
(Set (Inheritance (Concept "cat") (Concept "animal")) (Inheritance (Concept "dog") (Concept "animal")))
