; Parity case "choice-link", after OpenCog atomspace tests/query/choice-link.scm: ChoiceLink: alternative clauses.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (Choice (Inheritance (Variable "$x") (Concept "mammal")) (Inheritance (Variable "$x") (Concept "reptile"))))
;; @refused ChoiceLink
