with

source as (

    select * from {{ source('direct_mail', 'sends') }}

),

renamed as (

    select
        run_id,
        campaign,
        profile_id,
        file_name,
        is_holdout,
        not is_holdout and file_name is not null as is_mailed,
        sent_at

    from source

)

select * from renamed
