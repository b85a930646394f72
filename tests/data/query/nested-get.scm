; Parity case "nested-get", after OpenCog atomspace tests/query/get-link-embed.scm: a GetLink nested inside a clause.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (Member (Variable "$x") (Get (Variable "$y") (Inheritance (Variable "$y") (Concept "mammal")))))
;; @refused GetLink
