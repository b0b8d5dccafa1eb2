from local_deploy.cli import main

raise SystemExit(main())
