from infra.cluster.cli import main

raise SystemExit(main())
