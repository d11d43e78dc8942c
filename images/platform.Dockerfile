# syntax=docker/dockerfile:1
# The platform's three .NET images, one target each, built from the repository root:
#   docker build -f images/platform.Dockerfile --target api   -t ghcr.io/streamspace-dev/streamspace-api:0.1.0 .
#   docker build -f images/platform.Dockerfile --target web   -t ghcr.io/streamspace-dev/streamspace-web:0.1.0 .
#   docker build -f images/platform.Dockerfile --target agent -t ghcr.io/streamspace-dev/streamspace-agent:0.1.0 .
# They share the restore and source layers, so building all three restores once. A fourth target is no image to run but
# what session images copy (images/session/Dockerfile): the agent and its runtime, for the pod's file service.
#   docker build -f images/platform.Dockerfile --target session-files -t ghcr.io/streamspace-dev/streamspace-session-files:0.1.0 .

# noVNC comes from npm, pinned by the web app's package-lock.json; the SDK image has no npm.
FROM node:22-bookworm-slim AS novnc
WORKDIR /src/StreamSpace.Web
COPY StreamSpace.Web/package.json StreamSpace.Web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Project files first, so the restore layer is reused until a dependency changes.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY StreamSpace.ServiceDefaults/StreamSpace.ServiceDefaults.csproj StreamSpace.ServiceDefaults/
COPY StreamSpace.Contracts/StreamSpace.Contracts.csproj StreamSpace.Contracts/
COPY StreamSpace.Api/StreamSpace.Api.csproj StreamSpace.Api/
COPY StreamSpace.Agent/StreamSpace.Agent.csproj StreamSpace.Agent/
COPY StreamSpace.Web/StreamSpace.Web.csproj StreamSpace.Web/
RUN for project in Api Agent Web; do dotnet restore "StreamSpace.$project/StreamSpace.$project.csproj" || exit 1; done
COPY StreamSpace.ServiceDefaults/ StreamSpace.ServiceDefaults/
COPY StreamSpace.Contracts/ StreamSpace.Contracts/
COPY StreamSpace.Api/ StreamSpace.Api/
COPY StreamSpace.Agent/ StreamSpace.Agent/
COPY StreamSpace.Web/ StreamSpace.Web/
COPY --from=novnc /src/StreamSpace.Web/node_modules/ StreamSpace.Web/node_modules/

FROM build AS publish-api
RUN dotnet publish StreamSpace.Api/StreamSpace.Api.csproj -c Release --no-restore -o /app

FROM build AS publish-agent
RUN dotnet publish StreamSpace.Agent/StreamSpace.Agent.csproj -c Release --no-restore -o /app

FROM build AS publish-web
RUN dotnet publish StreamSpace.Web/StreamSpace.Web.csproj -c Release --no-restore -o /app

# aspnet, not runtime, for all three: the agent too serves HTTP (its health endpoint), through ServiceDefaults.
# The image's non-root "app" user (uid 1654) is the one the chart's securityContext expects.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
USER $APP_UID

FROM runtime AS api
COPY --from=publish-api /app ./
ENV ASPNETCORE_HTTP_PORTS=8000
EXPOSE 8000
ENTRYPOINT ["dotnet", "StreamSpace.Api.dll"]

FROM runtime AS web
COPY --from=publish-web /app ./
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080
ENTRYPOINT ["dotnet", "StreamSpace.Web.dll"]

FROM runtime AS agent
# ffmpeg exports recordings to MP4; installed as root, then back to the app's account.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
USER $APP_UID
COPY --from=publish-agent /app ./
EXPOSE 8081
ENTRYPOINT ["dotnet", "StreamSpace.Agent.dll"]

# The file service of a session pod is the agent itself in its files-serve mode (the same code confines the local
# platform's files), so session images take the published agent and the runtime it needs from here, under
# /opt/streamspace, rather than a second implementation. Built FROM scratch: only these two folders.
FROM scratch AS session-files
COPY --from=runtime /usr/share/dotnet /opt/streamspace/dotnet
COPY --from=publish-agent /app /opt/streamspace/agent
