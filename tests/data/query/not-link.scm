; Parity case "not-link", after OpenCog atomspace tests/query/buggy-not.scm: NotLink: a negated clause.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "cow") (Concept "mammal"))
(Inheritance (Concept "cat") (Concept "pet"))
(Inheritance (Concept "dog") (Concept "wild"))
;; @query
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "mammal")) (Not (Inheritance (Variable "$x") (Concept "pet")))))
;; @refused NotLink
