; Parity case "sequential-and", after OpenCog atomspace tests/query/sequence.scm: SequentialAndLink: a behaviour-tree sequence.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (SequentialAnd (Inheritance (Variable "$x") (Concept "mammal")) (Inheritance (Variable "$x") (Concept "animal"))))
;; @refused SequentialAndLink
