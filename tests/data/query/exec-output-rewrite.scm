; Parity case "exec-output-rewrite", after OpenCog atomspace tests/query/exec-gsn.scm: a rewrite that calls a GroundedSchemaNode.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Bind (Variable "$x") (Inheritance (Variable "$x") (Concept "mammal"))
  (ExecutionOutput (GroundedSchema "scm: make-pet") (List (Variable "$x"))))
;; @refused ExecutionOutputLink
