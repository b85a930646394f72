; Parity case "bind-quote-rewrite", after OpenCog atomspace tests/query/quote-exec-getlink.scm: a quoted VariableNode in the rewrite stays itself.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Bind (Variable "$x") (Inheritance (Variable "$x") (Concept "reptile"))
  (List (Quote (Variable "$x")) (Variable "$x")))
;; @expect
(Set (List (Variable "$x") (Concept "snake")))
